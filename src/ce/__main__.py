from __future__ import annotations

from ce.cli import main

if __name__ == "__main__":
    main()
