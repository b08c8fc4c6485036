"""Every corpus preparer on a tiny fake tree, EmoDB on the real corpus."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from vocalis.data import CORPORA, corpus_options, prepare
from vocalis.errors import ConfigError, DataError
from vocalis.testing import make_audio_tree


def test_registry_lists_all_corpora():
    assert CORPORA.names() == [
        "baved",
        "crema-d",
        "emodb",
        "folder",
        "iemocap",
        "ravdess",
        "savee",
        "tess",
        "uid-folders",
    ]


@pytest.mark.parametrize(
    "name",
    ["baved", "emodb", "ravdess", "crema-d", "tess", "iemocap", "savee", "folder", "uid-folders"],
)
def test_corpora_refuse_wrong_roots(tmp_path, name):
    with pytest.raises(DataError, match="not a directory; expected"):
        prepare(name, tmp_path / "missing")
    make_audio_tree(tmp_path, {"random.txt": None})
    with pytest.raises(DataError, match=r"expected|no "):
        prepare(name, tmp_path)


def test_prepare_rejects_unknown_corpus_and_option(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown corpus 'emodbb'.*did you mean 'emodb'"):
        prepare("emodbb", tmp_path)
    with pytest.raises(ConfigError, match=r"no option 'chanel'.*did you mean 'channel'"):
        prepare("ravdess", tmp_path, chanel="song")
    assert corpus_options("ravdess") == {"channel": "speech"}


def test_emodb_fake_tree(tmp_path):
    make_audio_tree(
        tmp_path,
        {
            "wav/03a01Fa.wav": None,
            "wav/16b10Wb.wav": None,
            "wav/notes.wav": None,
            "erkennung.txt": None,
        },
    )
    (tmp_path / "erkennung.txt").write_text(
        "Nr.\tSatz\terkannt\tnatuerlich\n1\xa0\t03a01Fa.wav\t90,00\xa0\t75,00\xa0\n"
        "2\t16b10Wb.wav\t40,00\t50,00\n",
        encoding="latin-1",
    )
    m = prepare("emodb", tmp_path)
    assert m.ids == ["03a01Fa", "16b10Wb"]
    assert m.labels() == ["happiness", "anger"]
    assert m.column("gender") == ["male", "female"]
    assert m.column("text") == ["a01", "b10"] and m.column("take") == ["a", "b"]
    assert m.column("recognition") == ["90.00", "40.00"]
    assert prepare("emodb", tmp_path / "wav").ids == m.ids  # the wav folder itself works
    assert prepare("emodb", tmp_path, min_recognition=50).ids == ["03a01Fa"]


def test_ravdess_fake_tree(tmp_path):
    make_audio_tree(
        tmp_path,
        {
            "Audio/Actor_01/03-01-05-01-02-01-01.wav": None,
            "Audio/Actor_12/03-01-02-02-01-02-12.wav": None,
            "Audio/Actor_12/03-02-03-01-01-01-12.wav": None,
        },
    )
    m = prepare("ravdess", tmp_path)
    assert m.labels() == ["angry", "calm"]
    assert m.speakers == ["01", "12"] and m.column("gender") == ["male", "female"]
    assert m.column("intensity") == ["normal", "strong"]
    assert m.column("statement") == ["02", "01"] and m.column("repetition") == ["01", "02"]
    both = prepare("ravdess", tmp_path, channel="both")
    assert len(both) == 3 and both.column("channel").count("song") == 1
    with pytest.raises(DataError, match="channel='x'"):
        prepare("ravdess", tmp_path, channel="x")


def test_crema_d_fake_tree_with_demographics(tmp_path):
    make_audio_tree(
        tmp_path, {"AudioWAV/1001_DFA_ANG_XX.wav": None, "AudioWAV/1091_TIE_SAD_HI.wav": None}
    )
    m = prepare("crema-d", tmp_path)
    assert m.labels() == ["anger", "sad"] and m.speakers == ["1001", "1091"]
    assert m.column("sentence") == ["DFA", "TIE"]
    assert m.column("intensity") == ["unspecified", "high"]
    assert "gender" not in m.columns
    (tmp_path / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n"
        "1091,29,Female,Asian,Not Hispanic\n"
    )
    m = prepare("crema-d", tmp_path)
    assert m.column("gender") == ["male", "female"] and m.column("age") == ["51", "29"]


def test_tess_fake_tree(tmp_path):
    make_audio_tree(
        tmp_path,
        {
            "OAF_angry/OAF_back_angry.wav": None,
            "YAF_pleasant_surprised/YAF_bite_ps.wav": None,
            "OAF_Fear/OAF_dog_fear.wav": None,
            "YAF_sad/YAF_germ_unclear.wav": None,
        },
    )
    m = prepare("tess", tmp_path)
    by_id = {r["id"]: r for r in m}
    assert by_id["OAF_back_angry"]["label"] == "angry"
    assert by_id["YAF_bite_ps"]["label"] == "pleasant_surprise"
    assert by_id["OAF_dog_fear"]["label"] == "fear"
    assert by_id["YAF_germ_unclear"]["label"] == "sad"  # from the folder name
    assert set(m.speakers) == {"OAF", "YAF"} and set(m.column("gender")) == {"female"}
    assert by_id["YAF_bite_ps"]["word"] == "bite"


def _iemocap_tree(tmp_path, with_missing=False):
    lines = (
        "% header\n"
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
        "C-E2:\tNeutral;\t()\n"
        "[10.0100 - 11.3925]\tSes01F_impro01_M001\tfru\t[2.0000, 3.5000, 3.5000]\n"
        "[1.0 - 2.0]\tSes01F_script01_1_M002\txxx\t[3.0000, 3.0000, 3.0000]\n"
    )
    ev = tmp_path / "Session1/dialog/EmoEvaluation"
    ev.mkdir(parents=True)
    (ev / "Ses01F_impro01.txt").write_text(
        lines.replace("Ses01F_script01_1_M002", "Ses01F_impro01_M002")
    )
    (ev / "Ses01F_script01_1.txt").write_text(
        "[1.0 - 2.0]\tSes01F_script01_1_M000\texc\t[4.0000, 4.0000, 3.0000]\n"
    )
    wav = "Session1/sentences/wav"
    files = [
        f"{wav}/Ses01F_impro01/Ses01F_impro01_F000.wav",
        f"{wav}/Ses01F_impro01/Ses01F_impro01_M001.wav",
        f"{wav}/Ses01F_script01_1/Ses01F_script01_1_M000.wav",
    ]
    if not with_missing:
        files.append(f"{wav}/Ses01F_impro01/Ses01F_impro01_M002.wav")
    make_audio_tree(tmp_path, dict.fromkeys(files))


def test_iemocap_fake_tree(tmp_path):
    _iemocap_tree(tmp_path)
    m = prepare("iemocap", tmp_path)
    assert m.ids == [
        "Ses01F_impro01_F000",
        "Ses01F_impro01_M001",
        "Ses01F_impro01_M002",
        "Ses01F_script01_1_M000",
    ]
    assert m.labels() == ["neu", "fru", "xxx", "exc"]
    assert m.speakers == ["Ses01F", "Ses01M", "Ses01M", "Ses01M"]
    assert m.column("valence")[1] == "2.0000" and m.column("activation")[1] == "3.5000"
    assert m.column("method") == ["impro"] * 3 + ["script"]
    assert prepare("iemocap", tmp_path, method="script").ids == ["Ses01F_script01_1_M000"]
    four = prepare("iemocap", tmp_path, label_map="iemocap4", unmapped="drop")
    assert four.labels() == ["neutral", "happy"]


def test_iemocap_missing_wav(tmp_path):
    _iemocap_tree(tmp_path, with_missing=True)
    with pytest.raises(DataError, match=r"1 labelled utterance.*Ses01F_impro01_M002.wav"):
        prepare("iemocap", tmp_path)
    assert len(prepare("iemocap", tmp_path, missing="skip")) == 3


def test_savee_both_layouts(tmp_path):
    make_audio_tree(
        tmp_path,
        {
            "ALL/DC_a01.wav": None,
            "ALL/JK_sa15.wav": None,
            "AudioData/KL/su03.wav": None,
            "AudioData/KL/n30.wav": None,
        },
    )
    m = prepare("savee", tmp_path)
    by_id = {r["id"]: r for r in m}
    assert set(by_id) == {"DC_a01", "JK_sa15", "KL_su03", "KL_n30"}
    assert by_id["JK_sa15"]["label"] == "sadness" and by_id["KL_su03"]["label"] == "surprise"
    assert by_id["KL_n30"]["speaker"] == "KL" and by_id["DC_a01"]["sentence"] == "01"


def test_folder_with_and_without_speaker_regex(tmp_path):
    make_audio_tree(
        tmp_path,
        {
            "happy/spk1_a.wav": None,
            "happy/x/spk2_b.flac": None,
            "sad/spk1_a.wav": None,
            "sad/readme.txt": None,
        },
    )
    m = prepare("folder", tmp_path)
    assert m.ids == ["happy/spk1_a", "happy/x/spk2_b", "sad/spk1_a"]
    assert m.labels() == ["happy", "happy", "sad"]
    with pytest.raises(DataError, match="no 'speaker' column"):
        _ = m.speakers
    m = prepare("folder", tmp_path, speaker_regex=r"(?P<speaker>spk\d)_")
    assert m.speakers == ["spk1", "spk2", "spk1"]
    # matched against the file name, not label/sub/file: an anchored pattern works
    m = prepare("folder", tmp_path, speaker_regex=r"^(spk\d)_")
    assert m.speakers == ["spk1", "spk2", "spk1"]
    with pytest.raises(DataError, match=r"does not match the file name .spk1_a\.wav."):
        prepare("folder", tmp_path, speaker_regex=r"^happy")
    with pytest.raises(DataError, match="does not match"):
        prepare("folder", tmp_path, speaker_regex=r"nomatch")
    with pytest.raises(DataError, match="invalid"):
        prepare("folder", tmp_path, speaker_regex=r"(")


def _uid_tree(tmp_path):
    for uid, ext in [("u1", "wav"), ("u2", "flac"), ("u3", "wav")]:
        make_audio_tree(tmp_path, {f"{uid}/waveform.{ext}": None})
        (tmp_path / uid / "metadata.json").write_text(
            json.dumps({"encoding": "pcm_s16le", "sample_rate_hz": 16000, "nested": {"a": 1}})
        )
    (tmp_path / "train.csv").write_text(
        "uid,emotion,arousal,speaker_id\nu1,happy,0.7,A\nu2,sad,0.2,B\n"
    )
    (tmp_path / "eval.csv").write_text("uid,emotion,arousal,split\nu3,angry,0.9,test\n")


def test_uid_folders(tmp_path):
    _uid_tree(tmp_path)
    m = prepare("uid-folders", tmp_path)
    by_id = {r["id"]: r for r in m}
    assert set(by_id) == {"u1", "u2", "u3"}
    assert by_id["u1"]["label"] == "happy" and by_id["u1"]["emotion"] == "happy"
    assert by_id["u2"]["arousal"] == "0.2" and by_id["u2"]["path"].endswith("u2/waveform.flac")
    assert by_id["u1"]["split"] == "train" and by_id["u3"]["split"] == "test"
    assert by_id["u1"]["speaker"] == "A" and by_id["u3"]["speaker"] == ""
    assert by_id["u1"]["sample_rate_hz"] == "16000" and by_id["u1"]["encoding"] == "pcm_s16le"
    assert "nested" not in m.columns
    m2 = prepare("uid-folders", tmp_path, splits=["train.csv"], label_column="arousal")
    assert m2.labels() == ["0.7", "0.2"]


def test_uid_folders_errors(tmp_path):
    _uid_tree(tmp_path)
    (tmp_path / "u2" / "metadata.json").write_text('{"encoding": "flac"}')
    with pytest.raises(DataError, match=r"metadata\.json: missing key\(s\) sample_rate_hz"):
        prepare("uid-folders", tmp_path)
    (tmp_path / "more.csv").write_text("uid,emotion\nu9,sad\n")
    with pytest.raises(DataError, match="UID 'u9' has no folder"):
        prepare("uid-folders", tmp_path, splits=["more.csv"])
    assert (
        len(prepare("uid-folders", tmp_path, splits=["more.csv", "eval.csv"], missing="skip")) == 1
    )
    (tmp_path / "bad.csv").write_text("name,emotion\nu1,sad\n")
    with pytest.raises(DataError, match="no UID column"):
        prepare("uid-folders", tmp_path, splits="bad.csv")


@pytest.mark.emodb
def test_emodb_real_corpus(emodb_path):
    m = prepare("emodb", emodb_path)
    assert len(m) == 535
    assert len(set(m.speakers)) == 10
    assert m.counts() == {
        "anger": 127,
        "boredom": 81,
        "neutral": 79,
        "happiness": 71,
        "fear": 69,
        "sadness": 62,
        "disgust": 46,
    }
    spk = Counter(m.speakers)
    assert spk["16"] == 71 and spk["12"] == 35
    assert Counter(dict(zip(m.speakers, m.column("gender"), strict=True)).values()) == {
        "male": 5,
        "female": 5,
    }
    rec = [float(x) for x in m.column("recognition")]
    assert sum(rec) / len(rec) == pytest.approx(93.5, abs=0.05)  # README: human ceiling


def test_baved_names_levels_and_prefixed_speakers(tmp_path):
    make_audio_tree(
        tmp_path,
        {"3/12-m-21-3-2-104.wav": None, "0/7-f-30-0-0-9.wav": None, "0/notes.wav": None},
    )
    m = prepare("baved", tmp_path)
    by_id = {r["id"]: r for r in m}
    assert set(by_id) == {"baved_12-m-21-3-2-104", "baved_7-f-30-0-0-9"}
    row = by_id["baved_12-m-21-3-2-104"]
    assert (row["label"], row["speaker"], row["gender"], row["word"]) == (
        "high",
        "baved_12",
        "male",
        "3",
    )
    assert by_id["baved_7-f-30-0-0-9"]["label"] == "low"
    assert prepare("baved", tmp_path, speaker_prefix="")[0]["speaker"] in {"12", "7"}


def test_baved_real_corpus(emodb_path):
    root = emodb_path.parent / "baved"
    if not (root / "speakers_info.json").is_file():
        pytest.skip("BAVED not in ../shared/data")
    m = prepare("baved", root)
    assert len(m) == 1935 and len(set(m.speakers)) == 60
