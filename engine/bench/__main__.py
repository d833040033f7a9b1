"""``python -m engine.bench``: the replay benchmark (engine/bench/replay.py)."""

from engine.bench.replay import main

raise SystemExit(main())
