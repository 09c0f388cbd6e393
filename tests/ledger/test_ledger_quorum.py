"""Tests for ledger.quorum: the log's signature plus k of n witness cosignatures."""

from __future__ import annotations

import pytest
from ledger_fixtures import LOG_SIGNER, ORIGIN, WITNESS_SIGNERS, cosigned_note, log_note, seed

from ledger.cosignature import CosignatureSigner
from ledger.errors import QuorumError, SignatureError
from ledger.note import Note, NoteSignature, parse_note
from ledger.quorum import Quorum, min_quorum

ROOT = bytes(range(32))
WITNESSES = [w.verifier for w in WITNESS_SIGNERS]


@pytest.mark.parametrize(
    ("n", "f", "k"), [(3, 0, 2), (3, 1, 3), (4, 1, 3), (5, 1, 4), (7, 2, 5), (1, 0, 1)]
)
def test_min_quorum_is_ceil_of_n_plus_f_plus_1_over_2(n: int, f: int, k: int) -> None:
    assert min_quorum(n, f) == k
    assert 2 * min_quorum(n, f) - n >= f + 1  # two quorums share an honest witness


@pytest.mark.parametrize("k", [1, 2, 3])
def test_k_of_n(k: int) -> None:
    quorum = Quorum(LOG_SIGNER.verifier, WITNESSES, k)
    for cosigners in range(4):
        note = cosigned_note(7, ROOT, witnesses=cosigners)
        if cosigners >= k:
            assert quorum.verify(note).size == 7
        else:
            with pytest.raises(QuorumError, match=f"got {cosigners} cosignatures, want {k} of 3"):
                quorum.verify(note)
        assert quorum.open(note)[1] == tuple(w.name for w in WITNESS_SIGNERS[:cosigners])


def test_verify_cosigned_names_the_cosigners() -> None:
    quorum = Quorum(LOG_SIGNER.verifier, WITNESSES, 2)
    checkpoint, names = quorum.verify_cosigned(cosigned_note(7, ROOT, witnesses=2))
    assert (checkpoint.size, names) == (7, tuple(w.name for w in WITNESS_SIGNERS[:2]))
    with pytest.raises(QuorumError, match="got 1 cosignatures"):
        quorum.verify_cosigned(cosigned_note(7, ROOT, witnesses=1))


def test_unknown_witnesses_do_not_count() -> None:
    stranger = CosignatureSigner("stranger.example/witness", seed("stranger"))
    note = parse_note(cosigned_note(7, ROOT, witnesses=1))
    padded = note.with_signatures(stranger.cosign(note.text)).format()
    with pytest.raises(QuorumError, match="got 1 cosignatures, want 2"):
        Quorum(LOG_SIGNER.verifier, WITNESSES, 2).verify(padded)


def test_a_failing_known_cosignature_rejects_the_checkpoint() -> None:
    note = parse_note(cosigned_note(7, ROOT))
    bad = NoteSignature(WITNESS_SIGNERS[2].name, WITNESS_SIGNERS[2].key_id, bytes(72))
    tampered = note.with_signatures(bad).format()
    with pytest.raises(SignatureError, match="does not verify"):
        Quorum(LOG_SIGNER.verifier, WITNESSES, 2).verify(tampered)


def test_the_log_signature_is_required() -> None:
    note = parse_note(cosigned_note(7, ROOT))
    without_log = Note(note.text, note.signatures[1:]).format()
    with pytest.raises(SignatureError, match="no signature by the log key"):
        Quorum(LOG_SIGNER.verifier, WITNESSES, 2).verify(without_log)


def test_the_origin_is_checked() -> None:
    quorum = Quorum(LOG_SIGNER.verifier, WITNESSES, 1, origin="other.example/log")
    with pytest.raises(SignatureError, match=f"origin: got '{ORIGIN}'"):
        quorum.verify(cosigned_note(7, ROOT))
    assert Quorum(LOG_SIGNER.verifier, WITNESSES, 1).origin == ORIGIN
    with pytest.raises(QuorumError, match="want 1 of 3"):
        Quorum(LOG_SIGNER.verifier, WITNESSES, 1).verify(log_note(7, ROOT))


def test_bad_configurations_are_rejected() -> None:
    with pytest.raises(QuorumError, match=r"k: got 0, want 1\.\.3"):
        Quorum(LOG_SIGNER.verifier, WITNESSES, 0)
    with pytest.raises(QuorumError, match=r"k: got 4, want 1\.\.3"):
        Quorum(LOG_SIGNER.verifier, WITNESSES, 4)
    with pytest.raises(QuorumError, match="want >= 3 for n=3, f=1"):
        Quorum(LOG_SIGNER.verifier, WITNESSES, 2, f=1)
    assert Quorum(LOG_SIGNER.verifier, WITNESSES, 3, f=1).k == 3
    with pytest.raises(QuorumError, match="repeated witness"):
        Quorum(LOG_SIGNER.verifier, [WITNESSES[0], WITNESSES[0]], 1)
    with pytest.raises(QuorumError, match="log key among the witnesses"):
        Quorum(LOG_SIGNER.verifier, [LOG_SIGNER.verifier, WITNESSES[0]], 1)
