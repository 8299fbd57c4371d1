//! The codec of every `occc.v1` stub: prost encoding, with malformed
//! messages reported as INVALID_ARGUMENT instead of INTERNAL.
//!
//! Invariant: identical bytes on the wire to `tonic_prost::ProstCodec`; only
//! the status of a message that does not decode changes, so a person sending
//! e.g. a non-UTF-8 username learns what is wrong with their input.

use tonic::{
    Code, Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::ProstCodec;

/// Prost codec with client-actionable decode errors.
#[derive(Debug, Clone)]
pub struct OcccCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for OcccCodec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> Codec for OcccCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = OcccDecoder<<ProstCodec<T, U> as Codec>::Decoder>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        OcccDecoder(self.0.decoder())
    }
}

/// Wraps prost's decoder; see the module documentation.
#[derive(Debug)]
pub struct OcccDecoder<D>(D);

impl<D: Decoder<Error = Status>> Decoder for OcccDecoder<D> {
    type Item = D::Item;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        self.0.decode(buf).map_err(|status| {
            if status.code() == Code::Internal {
                Status::invalid_argument(format!(
                    "malformed occc.v1 message ({}); strings must be UTF-8",
                    status.message()
                ))
            } else {
                status
            }
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
