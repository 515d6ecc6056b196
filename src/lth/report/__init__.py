"""Report: figures and tables from summary.csv / layers.csv / curves.csv (and the similarity
verb's similarity.csv / indegree.csv), rendered into one
self-contained HTML page and one LaTeX document compiled to PDF, opening with the reproduction
scorecard. One module per concern, imported by what needs it (this file imports nothing, so a
verb loads only the modules its rule lists as code):

- tables: read and check the aggregate CSVs; the numbers behind figures and tables
- style: FigureStyle (the explicit look of every figure), seaborn context, method colors
- plotting: drawing helpers the figure modules share (log axes, bands, legends, heatmaps)
- overlap_figures: ticket-similarity figures (excess overlap, in-degree maps, score ranks)
- cost_figures: compute vs. accuracy (Pareto), iterations to target, the cost table
- figures: the registered figures (FIGURES) and their captions
- figure_files: each figure as PDF + PNG with its provenance record, for ``lth audit``
- claims: each paper claim as data, its metric as code, and its verdict
- scorecard: the claims' verdicts as the templates show them and as scorecard.csv
- html, latex: the templates' environments (templates/ ships with the package); latex also
  compiles the PDF
- render: report.html and report.tex of one experiment; make_report runs the whole report
"""
