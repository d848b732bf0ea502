"""``python -m skinfluence``: the main job on a built-in dataset."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
