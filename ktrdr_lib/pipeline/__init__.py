"""The training pipeline: a request becomes a context, bars become features and labels, a fit
becomes a TrainingResult.

``context`` resolves and freezes a request; ``prepare`` loads bars, computes features and
labels and splits them; ``run`` fits, evaluates and saves; ``aggregate`` builds the result.
"""
