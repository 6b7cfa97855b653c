//! Personal fields through the vault's policy, a column at a time.

use arrow::array::{Array, StringArray, StringBuilder};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use sb_privacy::{Method, PiiKind, Subject, Vault};

use crate::IngestError;

/// Applies `kind`'s policy to a column; `None` stays null, and so does a dropped value.
/// New tokens are deferred ([`Vault::tokenize_column_deferred`]): the caller commits them
/// before it commits anything made with them.
pub async fn column(
    vault: &Vault,
    kind: PiiKind,
    values: &[Option<&str>],
    subjects: &[&Subject],
) -> Result<StringArray, IngestError> {
    let items =
        || -> Vec<(&str, &Subject)> { values.iter().zip(subjects).filter_map(|(v, s)| v.map(|v| (v, *s))).collect() };
    match vault.method(kind) {
        Method::Token => {
            let (text, offsets) = vault.tokenize_column_deferred(kind, &items()).await?.into_parts();
            Ok(with_nulls(values, text, &offsets))
        }
        Method::Drop => Ok(StringArray::new_null(values.len())),
        _ => {
            let mut protected = vault.protect_batch(kind, &items()).await?.into_iter();
            let mut out = StringBuilder::with_capacity(values.len(), values.len() * 24);
            for v in values {
                out.append_option(v.and_then(|_| protected.next().flatten()));
            }
            Ok(out.finish())
        }
    }
}

/// The tokens of the present values as a column of all the values: the tokens' text becomes
/// the column's data as it is, and an absent value repeats the offset before it.
/// `token_offsets` are the tokens' (one more than tokens, the first 0).
fn with_nulls(values: &[Option<&str>], text: String, token_offsets: &[u32]) -> StringArray {
    let mut offsets: Vec<i32> = Vec::with_capacity(values.len() + 1);
    offsets.push(0);
    let mut next = token_offsets[1..].iter();
    let mut last = 0i32;
    for v in values {
        if v.is_some() {
            last =
                i32::try_from(*next.next().expect("a token per present value")).expect("a batch's tokens fit in 2 GiB");
        }
        offsets.push(last);
    }
    let nulls = values.iter().any(Option::is_none).then(|| NullBuffer::from_iter(values.iter().map(Option::is_some)));
    let column =
        StringArray::new(OffsetBuffer::new(ScalarBuffer::from(offsets)), Buffer::from_vec(text.into_bytes()), nulls);
    debug_assert_eq!(column.len(), values.len());
    column
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_values_are_null_and_the_tokens_keep_their_places() {
        let values = [None, Some("a"), None, None, Some("b"), Some("c"), None];
        let column = with_nulls(&values, "tok_1tok_22tok_333".into(), &[0, 5, 11, 18]);
        let got: Vec<Option<&str>> = column.iter().collect();
        assert_eq!(got, vec![None, Some("tok_1"), None, None, Some("tok_22"), Some("tok_333"), None]);
        let all = with_nulls(&[Some("a")], "tok_1".into(), &[0, 5]);
        assert_eq!((all.null_count(), all.value(0)), (0, "tok_1"));
        assert_eq!(with_nulls(&[], String::new(), &[0]).len(), 0);
    }
}
