"""Signatures made by the helper process verify; without the helper the node signs itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from amity.federation.signing import Signatures, _Helper


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
