"""``python -m xl_expense`` runs the command line."""

from xl_expense.cli import main

if __name__ == "__main__":
    main()
