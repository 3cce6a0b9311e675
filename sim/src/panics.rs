//! Turning a panic inside a simulation into a finding instead of a crash of the tool.

use std::any::Any;

/// The text of a panic payload.
pub fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".into()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn payloads_become_text() {
        let p = std::panic::catch_unwind(|| panic!("broken {}", 1)).unwrap_err();
        assert_eq!(super::message(p.as_ref()), "broken 1");
        let p = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(super::message(p.as_ref()), "static");
    }
}
