"""The I/O that drives the pure core: the Binance client, the session that owns one book, recording, replay
and the headless ``--ndjson`` writer. Nothing below ``engine.feed`` (book, sync, rules, markets) imports it."""
