//! ID numbers in reports: all but the last four characters hidden, unless `--show-pii`.

pub use crate::store::pii::mask;

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn keeps_only_the_last_four() {
        assert_eq!(mask("GHA12345678901"), "**********8901");
        assert_eq!(mask("12345"), "*2345");
        assert_eq!(mask("1234"), "****");
        assert_eq!(mask(""), "");
        assert_eq!(mask("ÀÉÎÕÜ1"), "**ÎÕÜ1");
    }
}
