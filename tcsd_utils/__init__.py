"""tcsd_utils: the thin helper package of tcsd, the study companion for Ouyang et al. 2024,
"Temperature-Centric Investigation of Speculative Decoding with Knowledge Distillation"
(arXiv 2410.10141).

One idea per module:
    temperature  what a temperature means; divergences between distributions
    models       the embedded SmolLM2 pair, drafts, any Hub pair; tokenizer checks
    speculative  speculative sampling and plain decoding, with statistics
    data         the project's prompt sets (instructions, math) and Hub sets
    plots        plotly figures, one function each
    widgets      ipywidgets panels that wrap the figure functions
    study        profiles, the papermill runner and the `tcsd` command
"""

__version__ = "0.1.0"
