"""methods: one module per method family, holding its algorithm and its torch-side settings
(the pruning criteria, filters, Early-Bird, supermasks, elastic transfer, re-introduction)."""
