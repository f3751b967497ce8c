"""Making exports: the shared path (`network`) and one module per model family
(`msdm`, `cocola`, `echo`). Import the family modules directly; they need torch."""
