"""``python -m facemark`` (also what ``torchrun -m facemark`` starts)."""

from facemark.cli import main

if __name__ == "__main__":
    main()
