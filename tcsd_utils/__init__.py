"""tcsd_utils: the thin helper package of tcsd, the study companion for Ouyang et al. 2024,
"Temperature-Centric Investigation of Speculative Decoding with Knowledge Distillation"
(arXiv 2410.10141).

One job per module, on seven floors (`.importlinter`; imports point down; docs/method.md,
"The house"). Every name is imported from the module that defines it.

7  cli          the `tcsd` command: study (--ray), bench, compare, profiles
6  cluster      the stages as Ray tasks, on this machine or a cluster (an optional extra)
5  study        `Study`: one run's cached stages (teacher samples, drafts, evaluated cells, the table)
   runs         the papermill runner: the notebooks in order, each once per source and settings
   bench        the speed benchmark against transformers
   beyond       notebook 06's measurements
4  evaluate     measuring a draft: expected alpha, c, timed speculative runs
   distill      offline and online KD: the divergences, resumable training
   plan         a profile checked before it runs, and its estimated time
   report       report.md: the claims table, the paper beside us, the machine
   widgets      ipywidgets panels that wrap the figure functions; beyond_plots: notebook 06's figures
3  speculative  speculative sampling and plain decoding, with statistics
   models       the embedded SmolLM2 pair, drafts, any Hub pair; tokenizer checks
   teacher      what drafts learn from: teacher samples, stored scores, the temperature mix
   rules        one rule per claim of the paper, with intervals from replicates (gamma's one interval)
   render       how a figure leaves the process: notebook, widget, HTML and PNG
   graph        the study's stages as a graph, derived from a profile
2  runners      how a model runs here: kernels chosen by measurement, the fast Llama path, T5
   profiles     every setting of every profile, as data: Settings, KDConfig, the drafts' names
1  files        output folders, atomic writes (safe on a shared filesystem), JSON, progress bars
   timing       the clock, the timing threads, the machine
   temperature  what a temperature means; divergences between distributions
   stats        intervals: bootstrap, Wilson, t, pooled spreads
   leviathan    Leviathan et al.'s equations: tokens per step, predicted speedup, best k
   data         the project's prompt sets (instructions, math) and Hub sets
   batching     (prompt, answer) pairs packed for one forward; padding
   subvocab     a Llama draft whose output layer covers part of the vocabulary
   plots        plotly figures of distributions; study_plots: figures of the results table
"""

__version__ = "0.1.0"
