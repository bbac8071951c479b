"""``python -m meanfield``: the command line (:func:`meanfield.cli.entry`)."""

if __name__ == "__main__":
    from .cli import entry

    entry()
