"""Tools that read GLU weights directly.

- `glu_zoo.interpret.bilinear`: interaction matrices of bilinear layers, their
  eigen-decomposition and truncation (Pearce et al. 2024, arXiv 2410.08417).
- `glu_zoo.interpret.logit_lens`: GLU value vectors read through the
  unembedding, neuron search, ablation and head ranking (arXiv 2504.14379).
"""
