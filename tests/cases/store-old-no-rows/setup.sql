INSERT INTO Slides VALUES ('s1', 'one.svs', 'data/slides/one.svs');
INSERT INTO Slides VALUES ('s2', 'two.svs', 'data/slides/two.svs');
INSERT INTO Annotations VALUES ('s2', NULL, 'b/initial_annotation.xml', '2021-01-01 08:00:00', NULL, NULL, NULL, NULL);
