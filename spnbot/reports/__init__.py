"""What the operator reads: charts and CSV exports, built from data the services hand over."""
