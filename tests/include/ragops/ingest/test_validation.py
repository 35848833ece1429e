from ragops.ingest.validation import DocumentFacts, validate_documents


def test_each_failure_gets_a_reason():
    facts = [
        DocumentFacts("ok", 100, True, False, 80, 1),
        DocumentFacts("empty", 0, True, False, 0, 0),
        DocumentFacts("huge", 10_000, True, False, 9000, 5),
        DocumentFacts("binary", 50, True, True, 0, 0),
        DocumentFacts("latin1", 50, False, False, 0, 0),
        DocumentFacts("blank", 20, True, False, 0, 0),
    ]
    reasons = validate_documents(facts, max_bytes=5000)
    assert "ok" not in reasons
    assert reasons["empty"].startswith("empty (0 bytes)") and "size limit" not in reasons["empty"]  # issue 22
    assert reasons["huge"] == "over the size limit of 5000 bytes"
    assert "binary" in reasons["binary"]
    assert "UTF-8" in reasons["latin1"]
    assert reasons["blank"].startswith("no text after parsing")


def test_nothing_to_validate():
    assert validate_documents([], 10) == {}
