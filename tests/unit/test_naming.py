"""Object keys and file names are built only from sanitised parts."""

from __future__ import annotations

from exporters.naming import campaign_file_name, object_key, safe_part


def test_separators_and_control_characters_are_removed() -> None:
    assert safe_part("../a/b\\c\x00d\ne") == "a b c d e"
    assert safe_part("..") == "export"
    assert safe_part("") == "export"


def test_file_names_are_at_most_200_bytes_and_keep_their_extension() -> None:
    name = campaign_file_name("é" * 300, "entries", "csv")
    assert len(name.encode()) <= 200
    assert name.endswith(" - entries.csv")
    name.encode().decode("utf-8")  # not cut inside a character


def test_object_key_layout() -> None:
    assert object_key("entries", "c/1", "x", "A - entries.csv") == "entries/c 1/x/A - entries.csv"
