"""One nested run's wall time, for a same-load comparison of two versions of the sampler.

    git archive main | tar -x -C /tmp/old   # the code to compare against
    PYTHONPATH=/tmp/old .venv/bin/python benchmarks/nested_cost_compare.py rrr "{'M':5,'H':3,'N':5,'r':0}" old
    PYTHONPATH=$PWD .venv/bin/python benchmarks/nested_cost_compare.py rrr "{'M':5,'H':3,'N':5,'r':0}" new

N = 500 live points, 3 sweeps, key 0: the settings of benchmarks/results/accuracy_nested.md.
Prints the seconds (model construction excluded), the deaths and the load average before and
after. Results: benchmarks/results/nested_cost_compare.md.
"""

import ast
import os
import sys
import time

import jax

import slt
import toy_models

name, params = sys.argv[1], ast.literal_eval(sys.argv[2])
model = toy_models.get(name, **params)
load = os.getloadavg()[0]
t0 = time.perf_counter()
run = slt.nested_sample_model(jax.random.key(0), model, progress=False, num_live=500, num_inner_steps=3)
print(sys.argv[3], model.label, "seconds", round(time.perf_counter() - t0, 1), "deaths", run.death_loss.size, "load", round(load, 1), "->", round(os.getloadavg()[0], 1), flush=True)
