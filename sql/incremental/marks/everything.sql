INSERT INTO tally.invalidations (aggregate, kind) VALUES ({{aggregate}}, 'all');
