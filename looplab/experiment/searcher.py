"""The searcher of a search: Optuna's TPE through Ray Tune's `OptunaSearch`, seeded from
`meta.random_seed`, one TPE per grid point, with trial indices assigned in suggestion order and carried in
the trial's config, so that results pair with configurations by trial, never by position.
"""

from __future__ import annotations

from typing import Any

from looplab.experiment.ray_trial import METRIC, MODE, finite
from looplab.spec.search import TRIAL_KEY, SearchSpace


def _searcher_class() -> type:
    from ray.tune.search import Searcher

    class LoopLabSearcher(Searcher):
        """TPE (Ray Tune's OptunaSearch, seeded) per grid point; assigns LoopLab trial indices."""

        def __init__(self, space: SearchSpace, seed: int):
            super().__init__(metric=METRIC, mode=MODE)
            from optuna.samplers import TPESampler
            from ray.tune.search.optuna import OptunaSearch

            self.space = space
            self.points = space.grid_points()
            dists = space.optuna_space()
            self.tpes = [OptunaSearch(space=dists, metric=METRIC, mode=MODE, sampler=TPESampler(seed=seed + g))
                         if dists else None for g in range(len(self.points))]
            self.count = 0
            self.owner: dict[str, int] = {}

        def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
            return True

        def suggest(self, trial_id: str) -> dict | None:
            k = self.count
            self.count += 1
            g = k % len(self.points)
            self.owner[trial_id] = g
            config = {TRIAL_KEY: k, **self.points[g]}
            tpe = self.tpes[g]
            if tpe is not None:
                config.update(self.space.decode(tpe.suggest(trial_id)))
            return config

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            tpe = self._tpe(trial_id)
            if tpe is not None and METRIC in result and finite(result[METRIC]):
                tpe.on_trial_result(trial_id, result)

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            tpe = self._tpe(trial_id)
            if tpe is not None:
                ok = result is not None and finite(result.get(METRIC))
                tpe.on_trial_complete(trial_id, result if ok else None, error=error or not ok)

        def _tpe(self, trial_id: str) -> Any:
            g = self.owner.get(trial_id)
            return None if g is None else self.tpes[g]

        def save(self, checkpoint_path: str) -> None:
            import pickle

            with open(checkpoint_path, "wb") as f:
                pickle.dump(self.__dict__, f)

        def restore(self, checkpoint_path: str) -> None:
            import pickle

            with open(checkpoint_path, "rb") as f:
                self.__dict__.update(pickle.load(f))

    return LoopLabSearcher


def make_searcher(space: SearchSpace, seed: int) -> Any:
    return _searcher_class()(space, seed)
