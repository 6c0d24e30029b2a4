//! A closed-loop model of one bottleneck for the controllers.
