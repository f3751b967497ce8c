"""Evaluation protocols: coherence (COCOLA K-pair accuracy, score distributions), separation metrics."""
