"""The kopf operator that reconciles MeterPipeline resources."""
