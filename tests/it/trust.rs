//! What makes an on-call engineer trust tally (issue 14): no stale aggregate
//! behind a green exit, no password in any message, no panic on hostile
//! input, permanent connection errors said at once, `/readyz` only once
//! every series is there.

mod killed_refresh;
mod secrets;
mod startup;
