//! How a list of nicks that may be one page of a longer one reads in a line of text (text
//! mode, the JSON tutorial): the names, then how many were left out, so that a room of
//! thousands reads as what it is rather than as a list that looks whole.

use natter_core::Name;
use std::fmt::Write as _;

/// `names` joined by `separator`, then ` and K more` when the whole list holds `count` names
/// (the hub lists big rooms and servers a page at a time).
pub fn names_and_more(names: &[Name], count: usize, separator: &str) -> String {
    let mut line = String::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            line.push_str(separator);
        }
        line.push_str(name);
    }
    let left_out = count.saturating_sub(names.len());
    match left_out {
        0 => {}
        _ if line.is_empty() => {
            let _ = write!(line, "{left_out} more");
        }
        _ => {
            let _ = write!(line, " and {left_out} more");
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_list_is_just_the_names_and_a_page_says_how_many_are_left_out() {
        let names: Vec<Name> = vec!["ann".into(), "bob".into()];
        assert_eq!(names_and_more(&names, 2, ", "), "ann, bob");
        assert_eq!(names_and_more(&names, 10_000, ", "), "ann, bob and 9998 more");
        assert_eq!(names_and_more(&[], 0, " "), "");
        assert_eq!(names_and_more(&[], 3, " "), "3 more");
    }
}
