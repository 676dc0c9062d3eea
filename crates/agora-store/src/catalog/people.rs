//! People's accounts: the checks on what an administrator gives (email, name, password) and
//! passwords hashed with Argon2id (RFC 9106), the parameters OWASP recommends (19 MiB, 2
//! passes, 1 lane: argon2's defaults). Hashing is slow on purpose: callers run it on a blocking
//! thread.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::{Error, Result};

/// Failed logins in a row that lock an account.
pub const LOCK_AFTER: i64 = 5;
/// How long a locked account stays locked, in seconds (an administrator may unlock it sooner).
pub const LOCK_SECS: i64 = 15 * 60;
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 12;
/// Longest password accepted (bytes hashed cost time: no unbounded input).
pub const MAX_PASSWORD: usize = 256;

/// An email address as people write it, checked and lower-cased (addresses are compared without
/// case).
pub fn email(s: &str) -> Result<String> {
    let s = s.trim();
    let bad = |why: &str| Error::Invalid(format!("email {s:?}: {why}"));
    if s.len() > 254 {
        return Err(bad("longer than 254 characters"));
    }
    let (local, domain) = s.split_once('@').ok_or_else(|| bad("has no @"))?;
    if local.is_empty() || domain.is_empty() || domain.contains('@') || !domain.contains('.') {
        return Err(bad("is not of the form name@domain.tld"));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control() || "<>\",;".contains(c)) {
        return Err(bad("holds a space, a control character or one of < > \" , ;"));
    }
    Ok(s.to_lowercase())
}

/// A person's name, checked.
pub fn name(s: &str) -> Result<String> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "a person's name is 1 to 200 characters, without control characters".into(),
        ));
    }
    Ok(s.to_owned())
}

/// The password policy: long enough, bounded, not the email or its name part.
pub fn check_password(password: &str, email: &str) -> Result<()> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        return Err(Error::Invalid(format!(
            "a password has at least {MIN_PASSWORD} characters ({n} given)"
        )));
    }
    if password.len() > MAX_PASSWORD {
        return Err(Error::Invalid(format!("a password has at most {MAX_PASSWORD} bytes")));
    }
    let lower = password.to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if lower == email || (local.len() >= 4 && lower.contains(local)) {
        return Err(Error::Invalid("a password may not contain the account's email".into()));
    }
    let first = password.chars().next();
    if password.chars().all(|c| Some(c) == first) {
        return Err(Error::Invalid("a password of one repeated character is refused".into()));
    }
    Ok(())
}

/// The Argon2id hash of `password`, as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| Error::Internal(format!("no random source: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
}

/// Whether `password` matches the PHC string `hash` (any Argon2 variant and parameters it names).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash of nothing anyone knows, checked when the email is unknown so that a wrong email takes
/// as long as a wrong password (no account discovery by timing).
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut b = [0u8; 32];
        let _ = getrandom::fill(&mut b);
        hash_password(&hex::encode(b)).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_hashes_verify_and_match_the_reference() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterz", &h));
        assert!(!verify_password("x", "not a hash"));
        // Hashes made by the reference C implementation (Debian's `argon2`:
        // `echo -n password | argon2 somesalt -id -t 2 -m 16 -p 1 -e`; the second is the
        // example of its README, Argon2i with 4 lanes) verify: the PHC strings interoperate.
        let reference = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
        assert!(verify_password("password", reference));
        let readme = "$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
        assert!(verify_password("password", readme));
        assert!(!verify_password("Password", reference));
    }

    #[test]
    fn policy_and_fields() {
        assert!(check_password("short", "a@b.fr").unwrap_err().to_string().contains("12"));
        assert!(check_password("aaaaaaaaaaaaaaa", "a@b.fr").is_err());
        assert!(check_password("marie.dupont-2026!", "marie.dupont@aix.fr").is_err());
        assert!(check_password(&"x".repeat(300), "a@b.fr").is_err());
        assert!(check_password("un mot de passe long", "marie@aix.fr").is_ok());
        assert_eq!(email(" Marie.Dupont@Mairie-Aix.FR ").unwrap(), "marie.dupont@mairie-aix.fr");
        for bad in ["marie", "@aix.fr", "marie@", "marie@aix", "ma rie@aix.fr", "a@b@c.fr"] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(name("  ").is_err());
        assert_eq!(name(" Marie Dupont ").unwrap(), "Marie Dupont");
    }
}
