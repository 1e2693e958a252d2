from legacy_service.analysis import analyse_text, normalise_text


def test_normalise_collapses_whitespace_and_composes_characters():
    assert normalise_text("  Cafe\u0301 \n\n au   lait ") == "Caf\u00e9 au lait"


def test_analyse_counts_words_sentences_and_long_words():
    stats = analyse_text("Photosynthesis converts light. Plants grow! Do they?")

    assert stats.word_count == 7
    assert stats.sentence_count == 3
    assert stats.long_words == ["photosynthesis"]


def test_analyse_of_empty_text_has_no_average():
    assert analyse_text("").average_word_length == 0.0
