"""vitalsd: blood-pressure monitoring for ketamine treatment sessions."""
