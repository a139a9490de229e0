//! Fuzzes the numbers inventory CSV importer (`domain::number::parse_inventory_csv`), fed by
//! `warbler import-numbers` and `POST /admin/numbers/import`.
//!
//! Properties, on any bytes: parsing never panics; an accepted file holds no number twice, each
//! with a two-letter country, a phone number that is E.164 (or a 3 to 8 digit short code) and
//! no NUL character in any field (PostgreSQL cannot store one); rendering each number's
//! display name never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warbler::domain::number::{display_name, parse_inventory_csv, NumberType, E164};

fuzz_target!(|data: &[u8]| {
    let Ok(numbers) = parse_inventory_csv(data) else {
        return;
    };
    let mut seen = std::collections::HashSet::new();
    for number in &numbers {
        assert!(seen.insert(number.phone_number.clone()), "{number:?} twice");
        assert!(
            number.iso_country.len() == 2
                && number.iso_country.bytes().all(|b| b.is_ascii_uppercase()),
            "{number:?}"
        );
        if number.number_type == NumberType::ShortCode {
            assert!((3..=8).contains(&number.phone_number.len()), "{number:?}");
        } else {
            let parsed = E164::parse(&number.phone_number).expect("an accepted number parses");
            assert_eq!(parsed.as_str(), number.phone_number);
        }
        let fields = [
            Some(&number.phone_number),
            Some(&number.iso_country),
            number.locality.as_ref(),
            number.region.as_ref(),
            number.postal_code.as_ref(),
            number.route.as_ref(),
        ];
        for field in fields.into_iter().flatten() {
            assert!(!field.contains('\0'), "NUL in {number:?}");
        }
        let _ = display_name(&number.phone_number);
    }
});
