"""Plain I/O, one module per outside system (no Prefect tasks here; tasks/ wraps these).

- dvc_registry: the git+DVC data registry
- mlflow_registry: MLflow tracking and the Model Registry
- prefect_api: Prefect events and artifacts
- batch_files: reading and quarantining incoming batch files
- dvc_seed: building the checkout's DVC-tracked data/ from seeds/
"""
