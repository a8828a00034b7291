"""The paper's statistics: the long table of graded responses, logistic models, paired tests, report and gate."""
