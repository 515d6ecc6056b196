"""An lth plug-in: a pruning criterion and a model, declared in `declarations` (torch-free)
and implemented in `criterion` and `model` (imported by lth's jobs only)."""
