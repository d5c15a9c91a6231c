"""Sweeps: training the points of a space with one short recipe, on Optuna.

    run_sweep("convnext_space", trials=24, epochs=2, data="digits", out="sweeps/cnx")

`study` opens the Optuna study (keyed by the space's content hash; the storage is an SQLite file
under the output folder unless a URL names another, e.g. PostgreSQL for workers on many
machines); `run` draws points through the study's sampler, trains each with
`archdsl.training.train` and records values, params, MACs, error and run path on the trial;
`report` reads studies back: error EDFs, per-value marginals, best points as specs, HTML.

May import `training`, `spaces`, `api`, `report` and `lang`; nothing imports it but `cli`.
"""
