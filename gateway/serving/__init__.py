"""One exchange from request to recorded answer: the model catalog, workloads, metrics, shutdown."""
