"""Studies of the quantum head on cached embeddings: screening of main effects, ablations, noise, energy.

Each study is a function writing ``results.json``, ``results.md`` and PNG plots into an output folder; the recipes
``recipes/{screening,ablation,noise_study,energy}.py`` are their command lines and ``configuration/studies/*.yaml``
their settings. Runs are independent tasks (see :mod:`.common`), spread over local processes or Ray and written one
file each under ``runs/``, so an interrupted study resumes where it stopped.
"""
