"""Test sets, the evaluation runner (ragas and containment measures), and comparison with earlier runs."""
