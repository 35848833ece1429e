"""What users tell us about answers, and the privacy of what they typed (issue 23): votes on served requests
(`votes.py`), redaction before storage (`redact.py`) and the retention of question text (`retention.py`)."""
