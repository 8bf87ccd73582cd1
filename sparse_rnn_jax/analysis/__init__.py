"""Analysis of sweep results: the paper's tables and figures, and the parent network.

Modules, in the order data flows:
  convergence  which models failed to converge, the loss cap, the ``uc`` rule
  tables       Tables III/IV: minimum validation loss by hidden-proportion and model-density bucket
  figures      the paper's figures as PNG (Fig. 1/2, 3-5, 6, 7-9, 10)
  predictor    the parent network: random forest and Flax MLP predicting minimum validation loss a priori
  candidates   candidate specs at a budget, ranked by the parent network (``experiments.recommend``)
  report       ``analyze(results_dirs, out_dir)``: report.md/html, figures, tables, saved predictor
"""
