-- The attribution touch window: the one place it is written. The
-- definition of daily_attribution joins touches to conversions with
-- `touch_window`; the invalidation triggers mark, for a written touch, the
-- days up to `window_end` (the latest instant a conversion it can be
-- credited to can have), and a refresh rewrites the days of the
-- conversions in those marks. Both forms say the same thing: an event of
-- the lead's user with a utm_source is a touch of a conversion when it
-- happened at or before the conversion and less than
-- attribution_lookback_days days before it.

-- is_touch:
-- ({{event}}: the event's alias) an event that can be a touch at all
nullif({{event}}.utm_source, '') IS NOT NULL

-- touch_window:
-- ({{touch}}: the touch's time, {{conversion}}: the conversion's time)
{{touch}} <= {{conversion}}
AND {{touch}} > {{conversion}} - make_interval(days => {{lookback_days}})

-- window_end:
-- ({{touch}}: the touch's time; parenthesized, as AT TIME ZONE binds tighter than +)
({{touch}} + make_interval(days => {{lookback_days}}))
