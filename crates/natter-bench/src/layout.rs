//! How the clients of a scenario are spread over its rooms: client `i` in room `i % rooms`.
//!
//! `fanout --rooms` and `soak` share it, so that "client 7 of 100 in 10 rooms" means the same
//! room in both, and the deliveries each room owes are counted from one rule.

/// Where the clients are: client `i` is in room `i % rooms`, at place `i / rooms` in it.
/// Round-robin rather than blocks, so that the first clients (the senders) fall into
/// different rooms and rooms differ in size by one at most.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Clients spread over the rooms.
    pub clients: u32,
    /// Rooms (at least 1).
    pub rooms: u32,
}

impl Layout {
    /// The room of client `i`.
    pub fn room(self, i: u32) -> u32 {
        i % self.rooms
    }

    /// The place of client `i` in its room.
    pub fn place(self, i: u32) -> usize {
        (i / self.rooms) as usize
    }

    /// Members of room `r`.
    pub fn members(self, r: u32) -> usize {
        (self.clients / self.rooms + u32::from(r < self.clients % self.rooms)) as usize
    }

    /// Deliveries owed when clients `0..senders` each send `messages` into their room: each
    /// reaches the other members of the sender's room, and nobody else.
    pub fn expected_deliveries(self, senders: u32, messages: u32) -> u64 {
        (0..senders.min(self.clients))
            .map(|j| (self.members(self.room(j)) as u64).saturating_sub(1) * u64::from(messages))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_has_a_room_and_a_place() {
        let layout = Layout { clients: 103, rooms: 10 };
        let sizes: Vec<usize> = (0..10).map(|r| layout.members(r)).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 103);
        assert_eq!(sizes[..3], [11, 11, 11]);
        assert_eq!(sizes[3..], [10; 7]);
        for i in 0..103 {
            assert!(layout.place(i) < layout.members(layout.room(i)), "client {i}");
        }
        assert_eq!((layout.room(102), layout.place(102)), (2, 10));
    }

    #[test]
    fn deliveries_stay_in_the_senders_room() {
        // One room: every message reaches every other client.
        let one = |clients| Layout { clients, rooms: 1 };
        assert_eq!(one(100).expected_deliveries(10, 1000), 990_000);
        assert_eq!(one(3).expected_deliveries(5, 2), 12);
        assert_eq!(one(1).expected_deliveries(1, 5), 0);
        // 10 clients in 4 rooms of 3, 3, 2, 2; senders 0..4, one per room: 2 + 2 + 1 + 1 others.
        assert_eq!(Layout { clients: 10, rooms: 4 }.expected_deliveries(4, 7), 6 * 7);
        // Senders 4 and 5 join rooms 0 and 1 as second senders there.
        assert_eq!(Layout { clients: 10, rooms: 4 }.expected_deliveries(6, 7), 10 * 7);
        // Rooms of one: nobody to deliver to.
        assert_eq!(Layout { clients: 5, rooms: 5 }.expected_deliveries(5, 9), 0);
    }
}
