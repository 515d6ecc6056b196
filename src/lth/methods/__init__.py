"""methods: one module per method family, holding its algorithm and its torch-side settings.
The families themselves are declared, torch-free, in lth.plan.families."""
