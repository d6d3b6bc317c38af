"""Signatures made by the helper process verify, and its checks of signatures hold; without
the helper the node signs and checks itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from amity.federation.signing import Signatures, _Helper
from amity.federation.signing_helper import (
    INVALID,
    PUBLIC,
    UNCHECKED,
    VALID,
    VERIFY,
    _answer,
    _load,
)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _verify(key: rsa.RSAPrivateKey, signature: bytes, message: bytes) -> None:
    key.public_key().verify(signature, message, padding.PKCS1v15(), hashes.SHA256())


@pytest.fixture
async def signatures() -> AsyncIterator[Signatures]:
    made = Signatures(burst=4)
    yield made
    await made.close()


async def test_the_helper_signs_batches_with_several_keys(key: rsa.RSAPrivateKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    helper = await _Helper.start()
    try:
        messages = [f"(request-target): post /inbox/{i}".encode() for i in range(20)]
        keys = [key if i % 3 else other for i in range(20)]
        found = await asyncio.gather(
            *(helper.sign(k, m) for k, m in zip(keys, messages, strict=True))
        )
        for k, signature, message in zip(keys, found, messages, strict=True):
            _verify(k, signature, message)
        assert helper.outstanding == 0
    finally:
        await helper.close()
    assert helper.process.returncode is not None  # closing ends the process


async def test_a_burst_starts_the_helper_and_a_lone_signature_does_not(
    key: rsa.RSAPrivateKey, signatures: Signatures
) -> None:
    _verify(key, await signatures.sign(key, b"alone"), b"alone")
    await asyncio.sleep(0)
    assert not signatures.helper_running
    burst = [f"burst {i}".encode() for i in range(6)]
    for message, signature in zip(
        burst, await asyncio.gather(*(signatures.sign(key, m) for m in burst)), strict=True
    ):
        _verify(key, signature, message)
    async with asyncio.timeout(20):
        while not signatures.helper_running:
            await asyncio.sleep(0.01)
    many = [f"many {i}".encode() for i in range(80)]  # more than the backlog: some made here
    for message, signature in zip(
        many, await asyncio.gather(*(signatures.sign(key, m) for m in many)), strict=True
    ):
        _verify(key, signature, message)


async def test_signing_goes_on_when_the_helper_dies(
    key: rsa.RSAPrivateKey, signatures: Signatures
) -> None:
    await asyncio.gather(*(signatures.sign(key, b"start") for _ in range(4)))
    async with asyncio.timeout(20):
        while not signatures.helper_running:
            await asyncio.sleep(0.01)
    assert signatures._helper is not None
    signatures._helper.process.kill()
    await signatures._helper.process.wait()
    messages = [f"after {i}".encode() for i in range(10)]
    found = await asyncio.gather(*(signatures.sign(key, m) for m in messages))
    for message, signature in zip(messages, found, strict=True):
        _verify(key, signature, message)
    assert not signatures.helper_running


def _sign(key: rsa.RSAPrivateKey, message: bytes) -> bytes:
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def _altered(signature: bytes) -> bytes:
    return signature[:-1] + bytes([signature[-1] ^ 1])


async def test_the_helper_checks_signatures_beside_the_ones_it_makes(
    key: rsa.RSAPrivateKey,
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    helper = await _Helper.start()
    try:
        messages = [f"(request-target): post /inbox/{i}".encode() for i in range(12)]
        good = [_sign(key, m) for m in messages]
        checks = [
            helper.verify(key.public_key(), good[0], messages[0]),
            helper.sign(other, messages[1]),  # one batch may mix both
            helper.verify(key.public_key(), good[0], messages[1]),  # another message
            helper.verify(other.public_key(), good[2], messages[2]),  # another key
            helper.verify(key.public_key(), _altered(good[3]), messages[3]),
            *(
                helper.verify(key.public_key(), s, m)
                for s, m in zip(good[4:], messages[4:], strict=True)
            ),
        ]
        answers = await asyncio.gather(*checks)
        assert answers[0] == VALID
        _verify(other, answers[1], messages[1])
        assert answers[2:5] == [INVALID, INVALID, INVALID]
        assert answers[5:] == [VALID] * 8
        assert helper.outstanding == 0
    finally:
        await helper.close()


def test_a_key_the_helper_cannot_use_is_left_to_the_node() -> None:
    assert _load(PUBLIC, b"not a key") is None
    assert _answer(VERIFY, None, b"message", b"signature") == UNCHECKED


async def test_a_burst_of_checks_starts_the_helper_and_every_verdict_holds(
    key: rsa.RSAPrivateKey, signatures: Signatures
) -> None:
    public = key.public_key()
    assert await signatures.verify(public, _sign(key, b"alone"), b"alone")
    assert not await signatures.verify(public, _sign(key, b"alone"), b"other")
    assert not signatures.helper_running
    messages = [f"delivery {i}".encode() for i in range(6)]
    await asyncio.gather(*(signatures.verify(public, _sign(key, m), m) for m in messages))
    async with asyncio.timeout(20):
        while not signatures.helper_running:
            await asyncio.sleep(0.01)
    many = [f"many {i}".encode() for i in range(80)]  # more than the backlog: some here
    wanted = [i % 5 != 0 for i in range(80)]  # every fifth signature is of another message
    verdicts = await asyncio.gather(
        *(
            signatures.verify(public, _sign(key, m if ok else b"forged"), m)
            for m, ok in zip(many, wanted, strict=True)
        )
    )
    assert verdicts == wanted


async def test_checking_goes_on_when_the_helper_dies(
    key: rsa.RSAPrivateKey, signatures: Signatures
) -> None:
    public = key.public_key()
    await asyncio.gather(*(signatures.verify(public, b"x", b"start") for _ in range(4)))
    async with asyncio.timeout(20):
        while not signatures.helper_running:
            await asyncio.sleep(0.01)
    assert signatures._helper is not None
    signatures._helper.process.kill()
    await signatures._helper.process.wait()
    verdicts = await asyncio.gather(
        signatures.verify(public, _sign(key, b"after"), b"after"),
        signatures.verify(public, _sign(key, b"after"), b"forged"),
    )
    assert verdicts == [True, False]
    assert not signatures.helper_running
