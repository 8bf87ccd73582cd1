"""The run service: a run's frozen config (``config``), training a workdir from it and reloading it (``train``), the
estimate of what it will cost before it runs (``estimate``), and the command line that gives it back (``command``)."""
