"""verbs: the thin command line, `python -m lth <verb>`. A verb reads one typed job, calls
one method or analysis function, and writes the records."""
