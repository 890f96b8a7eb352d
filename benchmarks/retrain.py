"""Where one Elec2 retrain spends its time: flow overhead, DVC pull, GX, training, gate, MLflow.

Starts a real Prefect server and MLflow server on free ports, ingests the full Elec2 history as one
DVC version, then runs the retrain flow twice in-process (first champion; then champion vs challenger),
side by side with a plain LightGBM fit of the same rows. Writes benchmarks/results/retrain.json.

    .venv/bin/python benchmarks/retrain.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import stack

    tmp = Path(tempfile.mkdtemp(prefix="evergreen-bench-"))
    pport, mport = stack.free_port(), stack.free_port()
    prefect = stack.start_prefect_server(pport, tmp / "prefect", log_path=tmp / "prefect.log")
    mlflow_srv = stack.start_mlflow_server(
        mport,
        backend_store_uri=f"sqlite:///{tmp / 'mlflow.db'}",
        artifacts_destination=tmp / "artifacts",
        log_path=tmp / "mlflow.log",
    )
    try:
        os.environ.update(
            {
                "PREFECT_API_URL": f"http://127.0.0.1:{pport}/api",
                "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mport}",
                "EVERGREEN_HOME": str(tmp / "home"),
                "PREFECT_LOGGING_LEVEL": "WARNING",
            }
        )
        os.chdir(ROOT)
        import lightgbm

        from evergreen.datasets import prepare_elec2
        from evergreen.spec import load_spec
        from evergreen.training import labels, split
        from flows.ingest import ingest
        from flows.retrain import retrain

        frame = prepare_elec2(ROOT / "seeds" / "elec2" / "electricity.csv")
        batch = tmp / "elec2.parquet"
        frame.to_parquet(batch, index=False)
        t = time.perf_counter()
        ingest(model="elec2", path=str(batch))
        ingest_s = time.perf_counter() - t

        runs = []
        for _ in range(2):
            t = time.perf_counter()
            out = retrain(model="elec2", reason="manual", force=True)
            runs.append(
                {"wall_s": round(time.perf_counter() - t, 3), "status": out["status"], **out["seconds"]}
            )

        spec = load_spec("elec2", ROOT / "models")
        sp = split(frame, spec)
        params = {"random_state": 42, "n_jobs": 1, "verbose": -1, **spec.training.estimator.params}
        t = time.perf_counter()
        lightgbm.LGBMClassifier(**params).fit(
            sp.train[spec.numeric + spec.categorical], labels(sp.train, spec)
        )
        plain = time.perf_counter() - t

        result = {
            "rows": len(frame),
            "train_rows": len(sp.train),
            "ingest_full_history_s": round(ingest_s, 3),
            "retrain_runs": runs,
            "plain_lightgbm_fit_s": round(plain, 3),
            "ratio_retrain_flow_to_plain_fit": round(runs[-1]["wall_s"] / plain, 1),
        }
        out_path = ROOT / "benchmarks" / "results" / "retrain.json"
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    finally:
        prefect.stop()
        mlflow_srv.stop()


if __name__ == "__main__":
    main()
