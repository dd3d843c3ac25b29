"""tcsd_utils: the thin helper package of tcsd, the study companion for Ouyang et al. 2024,
"Temperature-Centric Investigation of Speculative Decoding with Knowledge Distillation"
(arXiv 2410.10141).

One idea per module, top to bottom in the layers of `.importlinter` (imports point down):
    study        the `tcsd` command: the papermill runner, bench, compare, profiles
    stages       the cached stages of a profile: teacher data, drafts, evaluation cells, the table
    bench        the speed benchmark against transformers
    widgets      ipywidgets panels that wrap the figure functions
    report       report.md: the claims table, the paper beside us, the machine
    profiles     every setting of every profile, in one place
    beyond       notebook 06's measurements (beyond_plots: their figures)
    rules        one rule per claim of the paper, with intervals from replicates
    evaluate     expected alpha, and the theory that turns it into a speedup
    distill      offline and online KD: the divergences, KDConfig, resumable training
    plots        plotly figures of distributions, one function each
    timing       how a cost is timed: c, the runs behind empirical alpha and gamma
    speculative  speculative sampling and plain decoding, with statistics
    teacher      what drafts learn from: teacher samples, stored scores, the temperature mix
    study_plots  figures of the study's stages and results table
    runners      how the decoders call a model: the fast Llama path, T5, transformers' forward
    models       the embedded SmolLM2 pair, drafts, any Hub pair; tokenizer checks
    batching     (prompt, answer) pairs packed for one forward, the head on the answers only
    stats        intervals: bootstrap, Wilson, t, pooled spreads
    data         the project's prompt sets (instructions, math) and Hub sets
    render       how a figure leaves the process: notebook, widget, HTML and PNG
    kernels      the machine: matrix kernels chosen by measurement, timing threads
    temperature  what a temperature means; divergences between distributions
    subvocab     a Llama draft whose output layer covers part of the vocabulary
    files        output folders, atomic writes, JSON, progress bars
"""

__version__ = "0.1.0"
