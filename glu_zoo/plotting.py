"""The one place that imports matplotlib (the `plot` extra), headless."""

__all__ = ["pyplot"]


def pyplot(owner):
    """matplotlib.pyplot on the Agg backend, or an ImportError naming `owner`
    and the extra to install."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError(f"{owner}: plotting needs matplotlib (pip install 'glu-zoo[plot]').") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt
