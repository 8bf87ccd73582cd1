"""Model families: the block RNN, baseline cells, leaky and gated block RNNs, their masks and the registry."""
